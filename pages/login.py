"""Sign in: the only view a hosted instance shows before someone signs in (no data here)."""

import streamlit as st

from lib import auth, ui

ui.route_through_app()  # a fresh server may run this file on its own: route it through app.py
access = ui.settings().access
st.title("Cascade")
st.caption("Crypto market stress dashboard. Sign in to continue.")
if problem := ui.secrets_problem():
    st.error(f"The secrets cannot be read, so no sign-in works until they are fixed. {problem}", icon=":material/key_off:")
    st.stop()

if access.oidc_providers:
    if user := ui.oidc_user():  # signed in by the identity provider, but not on the allowlist
        st.error(f"{user.get('email') or 'This account'} is not allowed here. Ask the desk's admin to add it, "
                 "or sign out and use another account.", icon=":material/block:")
        st.button("Sign out", key="oidc_sign_out", on_click=ui.sign_out, icon=":material/logout:")
    else:
        if not (access.allowed_emails or access.allowed_domains or access.admins):
            st.warning("No e-mail is allowed yet: the admin adds `allowed_emails`, `allowed_domains` or `admins` "
                       "under `[cascade]` in the secrets.")
        for provider in access.oidc_providers:
            st.button(f"Sign in with {provider.title()}" if provider else "Sign in with your organisation's account",
                      key=f"oidc_login_{provider or 'default'}", on_click=st.login, args=(provider or None,),
                      type="primary", icon=":material/login:")

hashes = {"password_hash": access.password_hash, "admin_password_hash": access.admin_password_hash}
for key in [k for k, v in hashes.items() if v and auth.parse_hash(v) is None]:
    st.error(f"`{key}` in the secrets is not a valid scrypt hash; make one with `python -m lib hash-password`.")

if any(hashes.values()):
    with st.form("login_form"):
        st.text_input("Desk password", type="password", key="login_password")
        # a callback runs before the next run starts, so app.py routes that run with the result
        st.form_submit_button("Sign in", type="primary", on_click=ui.submit_password, args=("login_password",))
        if problem := st.session_state.get(ui.LOGIN_PROBLEM_KEY):
            st.error(problem, icon=":material/lock:")

if not access.oidc_providers and not any(hashes.values()):
    st.error("Hosted mode is on, but no way to sign in is configured: set `password_hash` under `[cascade]` "
             "or an `[auth]` section in `.streamlit/secrets.toml` (README: Host it for your desk).")
