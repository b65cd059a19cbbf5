"""Citation metadata, version, changelog and the publishing workflow agree and are valid.

The two schema checks run check-jsonschema with the schemas it ships (no network): the Citation
File Format for CITATION.cff and GitHub's workflow schema for .github/workflows/pages.yml.
"""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import lossgrad

ROOT = Path(__file__).resolve().parent.parent
CFF = ROOT / "CITATION.cff"
WORKFLOW = ROOT / ".github" / "workflows" / "pages.yml"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
BASEURL = CONFIG["html"]["baseurl"]


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.fixture(scope="module")
def cff() -> dict:
    # CFF is YAML; keep dates as text, as the schema reads them.
    return yaml.load(CFF.read_text(), Loader=yaml.BaseLoader)


def test_citation_file_is_valid_cff():
    result = check_jsonschema("vendor.citation-file-format", CFF)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_an_invalid_citation_file(tmp_path):
    bad = tmp_path / "CITATION.cff"
    bad.write_text(CFF.read_text().replace('date-released: "', 'date-released: "released '))
    result = check_jsonschema("vendor.citation-file-format", bad)
    assert result.returncode == 1 and "date-released" in result.stdout, result.stdout


def test_one_version_number(cff):
    """The package's version is the book's: stated in __init__.py, repeated where it must be."""
    version = lossgrad.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    assert cff["version"] == version
    assert cff["preferred-citation"]["version"] == version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"], "pyproject.toml repeats the version"
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lossgrad.__version__"}
    init = (ROOT / "src" / "lossgrad" / "__init__.py").read_text()
    assert len(re.findall(r"^__version__ = ", init, re.M)) == 1


def test_the_changelog_ends_at_the_current_version(cff):
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.M)
    assert headings[0] == ("Unreleased", ""), headings
    released = headings[1:]
    assert released, "no released version"
    assert released[0] == (lossgrad.__version__, cff["date-released"]), released[0]
    for name, _ in headings:
        assert re.search(rf"^\[{re.escape(name)}\]: https://", text, re.M), f"no link for [{name}]"
    for line in re.findall(r"^### (.+)$", text, re.M):
        assert line in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, line


def test_the_citation_metadata_names_the_published_site(cff):
    assert BASEURL.endswith("/")
    assert cff["url"] == BASEURL
    assert cff["preferred-citation"]["url"] == BASEURL
    assert cff["title"] == CONFIG["title"] == cff["preferred-citation"]["title"]
    assert [a["name"] for a in cff["authors"]] == [CONFIG["author"]]
    # GitHub Pages serves repository OWNER/REPO at https://OWNER.github.io/REPO/.
    repository = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", cff["repository-code"])
    owner, repo = repository.groups()
    assert BASEURL == f"https://{owner}.github.io/{repo}/"
    readme = (ROOT / "README.md").read_text()
    assert "## Published site" in readme
    assert BASEURL in readme


def test_the_publishing_workflow_is_valid():
    result = check_jsonschema("vendor.github-workflows", WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_publishing_workflow_tests_then_deploys_the_site_with_the_pdf():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["main"]
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    runs = [step.get("run", "") for step in build["steps"]]
    uses = [step.get("uses", "").split("@")[0] for step in build["steps"]]
    # The README's test command, through .ci/run: its apt packages, then `make test`, with CI=true.
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert runs.index("bash .ci/run") < runs.index("make pdf")
    assert build["env"]["CI"] == "true"
    # After the PDF: the site rebuilt to offer it, the PDF copied in, the links checked again.
    publish = runs[runs.index("make pdf") + 1].splitlines()
    assert publish == [
        "make book",
        "cp _build/latex/*.pdf _build/html/",
        ".venv/bin/python -m pytest -p no:cacheprovider tests/test_links.py",
    ]
    upload = build["steps"][uses.index("actions/upload-pages-artifact")]
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert [step["uses"].split("@")[0] for step in deploy["steps"]] == ["actions/deploy-pages"]
