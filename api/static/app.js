// The few lines of script the pages use; everything works without them.
// An error summary takes the focus, so a keyboard or screen-reader user hears it first.
document.addEventListener("DOMContentLoaded", () => {
  const summary = document.querySelector("[data-autofocus]");
  if (summary) summary.focus();
});
