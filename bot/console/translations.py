"""Console page listing what a language still lacks: names config.yml gives only in the default
language (residents see those in the default language meanwhile), a mixin."""

from __future__ import annotations

from starlette.requests import Request as HttpRequest
from starlette.responses import Response


class TranslationPages:
    """Mixed into bot.console.app.Console, which gives config and render."""

    def translations_page(self, request: HttpRequest) -> Response:
        missing = self.config.missing_names
        counts = {lang.id: sum(1 for _, lang_id, _ in missing if lang_id == lang.id)
                  for lang in self.config.languages}
        return self.render(
            request, "translations.html", missing=missing, counts=counts,
            default=self.config.language(self.config.default_language),
            config_file=self.config.path.name)
