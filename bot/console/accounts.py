"""The admin's page of staff accounts: list them, disable or enable one, reset a password."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request as HttpRequest
from starlette.responses import RedirectResponse, Response

from bot.console import auth
from bot.console.i18n import StaffTranslator
from bot.console.models import StaffUser


class AccountPages:
    """Mixed into Console (expects its render, refuse and db); every action is audited."""

    def staff_accounts(self, request: HttpRequest) -> Response:
        with self.db.session() as session:
            users = list(session.execute(select(StaffUser).order_by(StaffUser.name)).scalars())
            return self.render(request, "staff.html", users=users,
                               min_password=auth.MIN_PASSWORD)

    def staff_account_action(self, request: HttpRequest) -> Response:
        """/staff/<name>/disable, /enable or /password (the new password typed twice)."""
        staff = request.state.staff
        t = StaffTranslator(staff.language)
        name = request.path_params["name"]
        action = request.url.path.rsplit("/", 1)[1]
        form = request.state.form
        ended_own = False
        try:
            with self.db.session() as session:
                if action == "password":
                    password = str(form.get("password", ""))
                    if password != str(form.get("again", "")):
                        raise auth.AccountError("The two passwords differ.")
                    user = auth.reset_password(session, name, password, actor=staff.name)
                    done = t("New password set for {name}; their sessions have ended.",
                             name=user.name)
                else:
                    user = auth.set_active(session, name, action == "enable", actor=staff.name)
                    done = (t("{name} can log in again.", name=user.name) if user.active else
                            t("{name} is disabled; their sessions have ended.", name=user.name))
                ended_own = user.id == staff.id and (action == "password" or not user.active)
            request.session["flash"] = done
        except auth.AccountError as exc:
            request.session["flash"] = t(exc.template, **exc.values)
        return RedirectResponse("/login" if ended_own else "/staff", status_code=303)
