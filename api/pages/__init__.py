"""The pages people use: the merchant dashboard and the operator console, server-rendered.

Jinja2 templates (templates/), one hand-written stylesheet and a few lines of plain
JavaScript (static/), no build step. Sessions are rows (api.auth.web_sessions) named by
an HttpOnly cookie; every form carries its session's CSRF token. Nothing here is in the
OpenAPI document: the pages are not the JSON API's contract. A later hosted checkout
reuses `render`, the locale choice and the layout.

    api.pages.install       the one call api.app makes: routers and static files
    api.pages.render        templates, locale, headers every page gets
    api.pages.i18n          English and Simplified Chinese messages
    api.pages.sessions      cookies, the signed-in holder, CSRF
    api.pages.sign_in       sign-in and sign-out, for staff and operators
    api.pages.dashboard_*   the merchant's pages
    api.pages.console       the operator's pages
    api.pages.timeline      an order's story, from the database and its workflow history
"""
