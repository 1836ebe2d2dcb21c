// The CSV import form (api/templates/pages/admin/organisations_import.html): a file over the app's
// body limit is stopped here with the form's own error message, because the server refuses such a
// body before any page sees it. Without this script the server still refuses it (413).
document.addEventListener("DOMContentLoaded", () => {
  const input = document.querySelector("input[data-max-bytes]");
  if (!input || !input.form) return;
  input.form.addEventListener("submit", (event) => {
    const file = input.files && input.files[0];
    const limit = Number(input.dataset.maxBytes);
    if (!file || file.size <= limit) return;
    event.preventDefault();
    let message = document.getElementById("file-size-error");
    if (!message) {
      message = document.createElement("p");
      message.id = "file-size-error";
      message.className = "error-message";
      message.setAttribute("role", "alert");
      input.parentElement.classList.add("form-group-error");
      input.before(message);
      input.setAttribute("aria-describedby", `${input.getAttribute("aria-describedby")} file-size-error`);
      input.setAttribute("aria-invalid", "true");
    }
    message.textContent = `Ошибка: файл слишком большой (${Math.ceil(file.size / 1024)} КБ); можно не больше ${Math.floor(limit / 1024)} КБ. Разделите его на части.`;
    input.focus();
  });
});
