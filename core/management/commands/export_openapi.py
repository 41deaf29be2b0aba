import json
from pathlib import Path

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Write the API's OpenAPI schema (what /api/v1/openapi.json serves) without a server."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", "-o", default="-", help="file path, or - for standard output")

    def handle(self, *args, output: str = "-", **options) -> None:
        from core.api_root import api

        schema = api.get_openapi_schema(path_prefix="/api/v1")
        text = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        if output == "-":
            self.stdout.write(text, ending="")
        else:
            Path(output).write_text(text, encoding="utf-8")
