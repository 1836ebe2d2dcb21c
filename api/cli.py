"""The `earlyhelp` command: serve, db upgrade, demo, user add, org list."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from core.config import get_settings
from core.db import make_engine, session_scope
from core.errors import DomainError
from core.logs import scrub_handlers, uvicorn_log_config
from core.migrate import upgrade
from core.tokens import Purpose, key_store
from models.organisations import ORG_KIND_LABELS, Organisation, OrgKind, Region
from models.users import ApiToken, Role, User, normalise_email

app = typer.Typer(help="earlyhelp — оркестратор ранней помощи детям и их семьям", no_args_is_help=True)
db_app = typer.Typer(help="База данных", no_args_is_help=True)
user_app = typer.Typer(help="Пользователи", no_args_is_help=True)
org_app = typer.Typer(help="Организации", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(org_app, name="org")
token_app = typer.Typer(help="API-токены и сеансы", no_args_is_help=True)
keys_app = typer.Typer(help="Ключи подписи токенов и ссылок", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(keys_app, name="keys")


def _one_line_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """An operator gets one line and a non-zero exit, not a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (SQLAlchemyError, ValueError, OSError, DomainError) as error:
            message = str(getattr(error, "orig", None) or error).splitlines()[0]
            typer.echo(f"ошибка: {message}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _check_standards() -> None:
    """Refuse to start on a broken standard file, naming the file and the line."""
    import standards

    standards.configure(get_settings().standards_dir)
    standards.load_all()


region_app = typer.Typer(help="Регионы", no_args_is_help=True)
app.add_typer(region_app, name="region")


@region_app.command("add")
@_one_line_errors
def region_add(
    code: Annotated[str, typer.Option(help="Код региона (имя файла standards/regions/<код>.yaml)")],
    name: Annotated[str, typer.Option(help="Название")],
    timezone: Annotated[str, typer.Option(help="Часовой пояс IANA, например Asia/Kamchatka")],
) -> None:
    """Добавить регион."""
    from zoneinfo import available_timezones

    if timezone not in available_timezones():
        raise ValueError(
            f"неизвестный часовой пояс {timezone!r} (нужен пояс IANA, например Europe/Kaliningrad)"
        )
    with session_scope(make_engine(get_settings().database_url)) as session:
        if session.exec(select(Region).where(Region.code == code)).first():
            raise ValueError(f"регион {code} уже есть")
        region = Region(code=code, name=name, timezone=timezone)
        session.add(region)
        session.flush()
        typer.echo(region.id)


@org_app.command("add")
@_one_line_errors
def org_add(
    region: Annotated[str, typer.Option(help="Код региона")],
    name: Annotated[str, typer.Option(help="Название")],
    kind: Annotated[OrgKind, typer.Option(help="Вид организации")],
    email: Annotated[str | None, typer.Option(help="E-mail для сообщений")] = None,
    phone: Annotated[str | None, typer.Option(help="Телефон")] = None,
    webhook_url: Annotated[str | None, typer.Option(help="Адрес webhook её системы")] = None,
) -> None:
    """Добавить организацию; печатает её номер и, если задан webhook, его секрет."""
    from pydantic import ValidationError

    from api.errors import validation_errors
    from api.services.organisations import OrganisationCreate, create_in_region

    try:
        body = OrganisationCreate(name=name, kind=kind, email=email, phone=phone, webhook_url=webhook_url)
    except ValidationError as error:
        first = validation_errors(error.errors())[0]
        raise ValueError(f"{first['field']}: {first['message']}") from None
    with session_scope(make_engine(get_settings().database_url)) as session:
        found = session.exec(select(Region).where(Region.code == region)).first()
        if found is None or found.id is None:
            raise ValueError(f"регион {region} не найден")
        # The page's and the API's rules: a unique name in the region, valid contacts.
        org, secret = create_in_region(session, found.id, body)
        typer.echo(org.id if secret is None else f"{org.id}\t{secret}")


@db_app.command("upgrade")
@_one_line_errors
def db_upgrade() -> None:
    """Применить миграции к базе данных (EARLYHELP_DATABASE_URL)."""
    upgrade(get_settings().database_url)
    typer.echo("база данных обновлена")


@app.command()
@_one_line_errors
def demo() -> None:
    """Загрузить демонстрационный регион (организации, пользователи, дети на всех этапах)."""
    from api.demo import DEMO_PASSWORD, USERS, load_demo

    settings = get_settings()
    upgrade(settings.database_url)
    with session_scope(make_engine(settings.database_url)) as session:
        created = load_demo(session, settings.public_url)
    typer.echo("демо-данные загружены" if created else "демо-данные уже есть")
    typer.echo(f"логины: {', '.join(login for login, *_ in USERS)}; пароль: {DEMO_PASSWORD}")


@app.command()
@_one_line_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Адрес")] = None,
    port: Annotated[int | None, typer.Option(help="Порт")] = None,
    workers: Annotated[int, typer.Option(help="Число процессов uvicorn")] = 1,
) -> None:
    """Запустить API (применив миграции)."""
    import logging.config

    import uvicorn

    settings = get_settings()
    _check_standards()
    upgrade(settings.database_url)
    for purpose in Purpose:  # create the keys once, before several workers race to do it
        key_store(settings).ensure(purpose)
    # The same configuration uvicorn applies, from now on: the worker's watcher logs before uvicorn starts.
    logging.config.dictConfig(uvicorn_log_config(settings.log_level))
    background = None
    if settings.relay_in_serve:  # embedded mode: one `earlyhelp worker` child, whatever --workers says
        from api.embedded import WorkerProcess

        background = WorkerProcess()
        background.start()
        # uvicorn stops on SIGTERM and then raises it again: let that end in SystemExit, through
        # the `finally` below, rather than in the default action, which would orphan the worker.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(
            "api.main:create_app",
            factory=True,
            host=host if host is not None else settings.host,
            port=port if port is not None else settings.port,
            workers=workers,
            # The app believes X-Forwarded-* from EARLYHELP_TRUSTED_PROXIES only (api/main.py);
            # uvicorn's own handling would trust 127.0.0.1 by default.
            proxy_headers=False,
            # No query strings, family-link tokens or personal data in any line (core/logs.py).
            log_config=uvicorn_log_config(settings.log_level),
            log_level="info",
        )
    finally:
        if background is not None:
            background.stop()


@app.command()
@_one_line_errors
def worker(
    # Embedded mode: the pid of `earlyhelp serve`; the worker stops when that process is gone.
    parent_pid: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Доставлять сообщения из outbox (Prefect flows) и следить за сроками отдельно от API."""
    from flows.worker import run_worker

    settings = get_settings()
    scrub_handlers(settings.log_level)  # after the imports: Prefect sets up its handlers on import
    _check_standards()
    upgrade(settings.database_url)
    run_worker(make_engine(settings.database_url), settings, parent_pid=parent_pid)


def _ask_password(login: str) -> str:
    """A password typed twice without echo, by the policy; three tries."""
    from api.security import password_problem

    for _ in range(3):
        password = typer.prompt("Пароль", hide_input=True)
        if typer.prompt("Повторите пароль", hide_input=True) != password:
            typer.echo("пароли не совпадают", err=True)
        elif problem := password_problem(password, login):
            typer.echo(problem, err=True)
        else:
            return str(password)
    raise ValueError("пароль не задан")


def _user(session: Session, login: str) -> User:
    user = session.exec(select(User).where(User.login == login)).first()
    if user is None:
        raise ValueError(f"пользователь {login} не найден")
    return user


@user_app.command("add")
@_one_line_errors
def user_add(
    login: Annotated[str, typer.Option(help="Логин")],
    name: Annotated[str, typer.Option(help="ФИО")],
    role: Annotated[Role, typer.Option(help="Роль")],
    org: Annotated[int, typer.Option(help="Номер организации (см. earlyhelp org list)")],
    email: Annotated[str | None, typer.Option(help="E-mail (обязателен для входа по паролю)")] = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="Создать пароль и напечатать его один раз")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="Учётная запись другой системы: без пароля, по API-токену")
    ] = False,
) -> None:
    """Создать пользователя. Пароль спрашивается без отображения (дважды) или создаётся (--generate);
    учётной записи другой системы (--no-password) печатается её API-токен (показывается один раз)."""
    from api.security import generate_password, new_api_token
    from api.services.users import new_user

    if generate and no_password:
        raise ValueError("--generate и --no-password вместе не имеют смысла")
    address = normalise_email(email) if email is not None else None
    if address is None and not no_password:
        raise ValueError("укажите --email: на него приходят уведомления о работе")
    password = None if no_password else generate_password(login) if generate else _ask_password(login)
    with session_scope(make_engine(get_settings().database_url)) as session:
        organisation = session.get(Organisation, org)
        if organisation is None:
            raise ValueError(f"организация {org} не найдена")
        user = new_user(
            session,
            login=login,
            full_name=name,
            role=role,
            org=organisation,
            email=address,
            password=password,
        )
        token = None
        if no_password:
            token, digest = new_api_token()
            session.add(ApiToken(user_id=user.id or 0, name="cli", token_hash=digest))
    if token is not None:
        typer.echo(token)
        return
    typer.echo(f"пользователь {login} создан (номер {user.id})")
    if generate:
        typer.echo(f"пароль (показывается один раз): {password}")


@user_app.command("password")
@_one_line_errors
def user_password(
    login: Annotated[str, typer.Argument(help="Логин")],
    generate: Annotated[
        bool, typer.Option("--generate", help="Создать пароль и напечатать его один раз")
    ] = False,
) -> None:
    """Сменить пароль пользователя (его сеансы завершаются)."""
    from api.security import generate_password
    from api.services.users import set_password

    password = generate_password(login) if generate else _ask_password(login)
    with session_scope(make_engine(get_settings().database_url)) as session:
        set_password(_user(session, login), password)
    typer.echo(f"пароль пользователя {login} изменён; его сеансы завершены")
    if generate:
        typer.echo(f"пароль (показывается один раз): {password}")


@user_app.command("disable")
@_one_line_errors
def user_disable(login: Annotated[str, typer.Argument(help="Логин")]) -> None:
    """Отключить пользователя: все его токены (сеансы и API-токены) перестают действовать сразу."""
    from api.services.users import set_active

    with session_scope(make_engine(get_settings().database_url)) as session:
        set_active(_user(session, login), False)
    typer.echo(f"пользователь {login} отключён; его токены больше не действуют")


@user_app.command("enable")
@_one_line_errors
def user_enable(login: Annotated[str, typer.Argument(help="Логин")]) -> None:
    """Снова включить пользователя (прежние сеансы не возвращаются; API-токены снова действуют)."""
    from api.services.users import set_active

    with session_scope(make_engine(get_settings().database_url)) as session:
        set_active(_user(session, login), True)
    typer.echo(f"пользователь {login} включён")


@user_app.command("list")
@_one_line_errors
def user_list(org: Annotated[int | None, typer.Option(help="Номер организации")] = None) -> None:
    """Пользователи: номер, логин, роль, организация, e-mail, включён ли."""
    with session_scope(make_engine(get_settings().database_url)) as session:
        query = select(User).order_by(col(User.id))
        if org is not None:
            query = query.where(User.organisation_id == org)
        for u in session.exec(query):
            state = "включён" if u.is_active else "отключён"
            typer.echo(f"{u.id}\t{u.login}\t{u.role.value}\t{u.organisation_id}\t{u.email or ''}\t{state}")


@token_app.command("add")
@_one_line_errors
def token_add(
    login: Annotated[str, typer.Option(help="Логин")],
    name: Annotated[str, typer.Option(help="Имя токена (например, система, которая им пользуется)")],
) -> None:
    """Выпустить API-токен пользователю и напечатать его (показывается один раз)."""
    from api.security import new_api_token

    with session_scope(make_engine(get_settings().database_url)) as session:
        user = _user(session, login)
        token, digest = new_api_token()
        session.add(ApiToken(user_id=user.id or 0, name=name, token_hash=digest))
    typer.echo(token)


@token_app.command("list")
@_one_line_errors
def token_list(login: Annotated[str | None, typer.Option(help="Логин")] = None) -> None:
    """API-токены: номер, логин, имя, когда выпущен, когда отозван."""
    with session_scope(make_engine(get_settings().database_url)) as session:
        query = (
            select(ApiToken, User.login)
            .join(User, col(User.id) == ApiToken.user_id)
            .order_by(col(ApiToken.id))
        )
        if login is not None:
            query = query.where(User.login == login)
        for t, owner in session.exec(query):
            revoked = f"отозван {t.revoked_at:%d.%m.%Y %H:%M}" if t.revoked_at else "действует"
            typer.echo(f"{t.id}\t{owner}\t{t.name}\t{t.created_at:%d.%m.%Y %H:%M}\t{revoked}")


@token_app.command("revoke")
@_one_line_errors
def token_revoke(
    id: Annotated[
        int | None, typer.Option("--id", help="Номер API-токена (см. earlyhelp token list)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Имя API-токена (всех с этим именем)")] = None,
    login: Annotated[str | None, typer.Option(help="Только токены этого пользователя")] = None,
    sessions: Annotated[
        bool, typer.Option("--sessions", help="Завершить все сеансы пользователя --login (JWT)")
    ] = False,
) -> None:
    """Отозвать API-токены (по номеру или имени) и/или все сеансы пользователя; действует сразу."""
    from api.services.users import end_sessions, revoke_api_tokens

    if id is None and name is None and not sessions:
        raise ValueError("укажите, что отозвать: --id, --name или --sessions --login <логин>")
    if sessions and login is None:
        raise ValueError("--sessions требует --login")
    with session_scope(make_engine(get_settings().database_url)) as session:
        user = _user(session, login) if login is not None else None
        if id is not None or name is not None:
            count = revoke_api_tokens(session, token_id=id, name=name, user_id=user.id if user else None)
            typer.echo(f"отозвано API-токенов: {count}")
        if sessions and user is not None:
            end_sessions(user)
            session.add(user)
            typer.echo(f"сеансы пользователя {user.login} завершены")


@keys_app.command("rotate")
@_one_line_errors
def keys_rotate(
    purpose: Annotated[Purpose, typer.Argument(help="staff — токены сотрудников; family — ссылки семей")],
) -> None:
    """Новый текущий ключ подписи; прежний принимается, пока могут действовать подписанные им токены."""
    settings = get_settings()
    store = key_store(settings)
    key = store.rotate(purpose)
    until = store.ring(purpose).lifetime
    typer.echo(f"новый ключ {purpose.value}: {key.kid}; прежний принимается ещё {until}, затем удаляется")


@keys_app.command("list")
@_one_line_errors
def keys_list() -> None:
    """Ключи подписи: назначение, номер (kid), создан, выведен из работы."""
    store = key_store(get_settings())
    for purpose in Purpose:
        ring = store.ring(purpose)
        for key in ring.keys:
            state = "текущий" if key is ring.current else "прежний"
            if ring.from_settings:
                state += " (из настроек)"
            typer.echo(f"{purpose.value}\t{key.kid}\t{key.created_at:%d.%m.%Y %H:%M}\t{state}")


@org_app.command("list")
@_one_line_errors
def org_list() -> None:
    """Список организаций."""
    with session_scope(make_engine(get_settings().database_url)) as session:
        for o in session.exec(select(Organisation).order_by(col(Organisation.id))):
            typer.echo(f"{o.id}\t{ORG_KIND_LABELS[o.kind]}\t{o.name}")


audit_app = typer.Typer(help="Журнал аудита", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("export")
@_one_line_errors
def audit_export(
    date_from: Annotated[str, typer.Option("--from", help="Первый день, ГГГГ-ММ-ДД (UTC)")],
    date_to: Annotated[str, typer.Option("--to", help="Последний день, ГГГГ-ММ-ДД (UTC), включительно")],
    fmt: Annotated[str, typer.Option("--format", help="csv или jsonl")] = "csv",
    output: Annotated[
        str | None, typer.Option("--output", help="Файл (создаётся с правами 0600); без него — stdout")
    ] = None,
) -> None:
    """Выгрузить журнал аудита за период: кто, когда, что читал или менял и какие попытки отклонены."""
    import os

    from api.audit import export, parse_day

    first, last = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    engine = make_engine(get_settings().database_url)
    if output is None:
        count = export(engine, first, last, fmt, sys.stdout)
    else:
        # The file holds who looked at which child: readable by its owner only.
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8", newline="") as out:
            count = export(engine, first, last, fmt, out)
    typer.echo(f"выгружено записей: {count}", err=True)


# --- reports (part D): the yearly form 1-РП -----------------------------------------------------


@app.command()
@_one_line_errors
def report(
    year: Annotated[int, typer.Option(help="Отчётный год, например 2025")],
    region: Annotated[str | None, typer.Option(help="Код региона (если регионов несколько)")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Сформировать здесь же (Prefect flow), показывая ход")
    ] = False,
) -> None:
    """Поставить в очередь отчёт по форме 1-РП за год (его сформирует worker) или, с --wait, сформировать
    его в этом процессе; печатает номер запуска и, с --wait, ход формирования."""
    import asyncio

    from api.services.reports import check_year, queue
    from flows.reports import claim, run_report, worker_name
    from models.common import today_in
    from models.reports import ReportKind, ReportStatus

    _check_standards()
    engine = make_engine(get_settings().database_url)
    with session_scope(engine) as session:
        regions = session.exec(select(Region).order_by(col(Region.code))).all()
        if region is not None:
            regions = [r for r in regions if r.code == region]
            if not regions:
                raise ValueError(f"регион {region} не найден")
        elif len(regions) != 1:
            raise ValueError("укажите регион: --region КОД")
        found = regions[0]
        check_year(year, today_in(found.timezone).year)
        run = queue(session, found.id or 0, ReportKind.form_1rp, year, None)
        session.flush()
        run_id = run.id or 0
    typer.echo(f"запуск № {run_id}: форма 1-РП за {year} год, регион {found.code}, в очереди")
    if not wait:
        return
    worker = worker_name()
    if not claim(engine, run_id, worker):
        typer.echo(f"запуск № {run_id} уже взял worker; ход — в earlyhelp или Prefect", err=True)
        return

    def progress(_: int, percent: int, stage: str) -> None:
        typer.echo(f"{percent:3d} %  {stage}")

    status = asyncio.run(run_report(engine, run_id, worker, on_progress=progress))
    if status != ReportStatus.done:
        with session_scope(engine) as session:
            from models.reports import ReportRun

            failed = session.get(ReportRun, run_id)
            raise ValueError(f"запуск № {run_id} не выполнен: {failed.error if failed else 'не найден'}")
    typer.echo(f"100 %  Готов: запуск № {run_id}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
