"""The words of the public open-figures page (/open), in the residents' catalogs.

They live here, not under bot/console/ (whose texts are the staff catalog's), because residents
and the public read this page in their own language. The page itself: bot/console/open_figures.py.
"""

from __future__ import annotations

from bot.i18n import Translator


def page_texts(t: Translator) -> dict[str, str]:
    """The page's fixed words in the reader's language."""
    return {
        "title": t("Open figures"),
        "intro": t("How the community answers residents' requests, month by month, and what "
                   "residents decided. Nothing here names a person."),
        "languages": t("Languages"),
        "requests": t("Requests by month and grid"),
        "grid": t("Grid"),
        "outside": t("Outside any grid"),
        "all_grids": t("All grids"),
        "all_requests": t("All requests"),
        "response": t("Response rate"),
        "resolution": t("Resolution rate"),
        "satisfaction": t("Satisfaction rate"),
        "on_time": t("Resolved on time"),
        "no_months": t("No month has ended since the first request."),
        "small": t("<5: fewer than 5 requests. The exact number is not shown, so that no "
                   "household can be recognised."),
        "complement": t("×: also hidden, so that a number under 5 cannot be worked out from "
                        "the totals."),
        "no_rate": t("—: not shown, because fewer than 5 requests could be counted, or to "
                     "protect such a figure."),
        "definitions": t("What the figures mean"),
        "def_month": t("A request counts in the month it was filed. A month is shown once it "
                       "has ended."),
        "def_response": t("Response rate: requests that staff acted on within 24 hours, or "
                          "within the time limit of their kind if that is shorter."),
        "def_resolution": t("Resolution rate: requests that are resolved now."),
        "def_satisfaction": t("Satisfaction rate: requests rated 4 or 5 out of 5, of those "
                              "that were rated."),
        "def_on_time": t("Resolved on time: requests resolved within their time limit."),
        "consultations": t("Results of closed consultations"),
        "choice": t("Choice"),
        "votes": t("Votes"),
        "all_votes": t("All votes"),
        "voters": t("Residents who voted"),
        "eligible": t("Residents who could vote"),
        "no_consultations": t("No consultation has closed yet."),
        "notices": t("Notices"),
        "no_notices": t("No notices are published now."),
        "download": t("The same figures as data:"),
    }


def month_heading(t: Translator, month: str) -> str:
    return t("Month: {month}", month=month)


def closed_on(t: Translator, day: str) -> str:
    return t("Closed on {date}", date=day)


def published_on(t: Translator, day: str) -> str:
    return t("Published on {date}", date=day)

