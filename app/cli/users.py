"""`jobserver users`: accounts and their roles."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import check, group, run, session, settings

app = group("Manage user accounts.")


@app.command("create")
def create(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    role: Annotated[str, typer.Option(help="admin, operator or viewer")] = "operator",
) -> None:
    """Create a user."""
    from app.services import users

    config = settings()
    check(users.check_email, email)
    check(users.check_password, password, config.password_min_length)

    async def go() -> None:
        async with session(config) as opened:
            await users.create(opened, email, password, role=role)

    run(go())
    typer.echo(f"created {email} ({role})")


@app.command("list")
def list_users() -> None:
    """List users with their role and state."""
    from app.services import users

    async def go() -> list[tuple[str, str, bool]]:
        async with session(settings()) as opened:
            return [(u.email, u.role, u.is_active) for u in await users.list_all(opened)]

    for email, role, active in run(go()):
        typer.echo(f"{email}\t{role}\t{'active' if active else 'inactive'}")


@app.command("set-role")
def set_role(email: str, role: str) -> None:
    """Change a user's role (admin, operator, viewer)."""
    from app.services import users

    async def go() -> None:
        async with session(settings()) as opened:
            await users.set_role(opened, email, role)

    run(go())
    typer.echo(f"{email} is now {role}")


@app.command("set-password")
def set_password(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a user's password."""
    from app.services import users

    config = settings()
    check(users.check_password, password, config.password_min_length)

    async def go() -> None:
        async with session(config) as opened:
            await users.set_password(opened, email, password)

    run(go())
    typer.echo(f"password of {email} changed (its existing tokens no longer work)")
