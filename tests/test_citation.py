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


def test_one_licence_per_work_as_the_licence_file_says(cff):
    """The package is MIT, the book CC BY 4.0; a list would offer either licence for both."""
    licence = (ROOT / "LICENSE").read_text()
    assert cff["license"] == "MIT", cff["license"]
    assert cff["preferred-citation"]["type"] == "book"
    assert cff["preferred-citation"]["license"] == "CC-BY-4.0"
    code, text = licence.split("\n\n")[1:3]
    assert "src/" in code and "MIT License" in code
    assert "Text and figures" in text and "CC BY 4.0" in text
    assert "creativecommons.org/licenses/by/4.0" in text
    assert "\nMIT License\n" in licence


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
    for line in re.findall(r"^### (.+)$", text, re.M):
        assert line in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, line
    # Links to tags and comparisons only into the repository that CITATION.cff names (none is
    # tagged or published yet, so there are none).
    for name, address in re.findall(r"^\[([^\]]+)\]: (\S+)$", text, re.M):
        assert address.startswith(cff["repository-code"] + "/"), (name, address)


def test_nothing_is_listed_as_unreleased_that_the_current_version_contains():
    """The site and the PDF call this build lossgrad.__version__: its changes are under it."""
    text = (ROOT / "CHANGELOG.md").read_text()
    unreleased = text[text.index("## [Unreleased]") : text.index("\n## [", text.index("## [U") + 1)]
    entries = [ln for ln in unreleased.splitlines()[1:] if ln.strip()]
    assert not entries, (
        f"CHANGELOG.md lists changes under Unreleased, but this build is version "
        f"{lossgrad.__version__}, which the site and the PDF show: list them under the version "
        f"that contains them (a new version: __init__.py, CITATION.cff and a dated heading)"
    )


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
    # The README and the "How to cite" page say where the workflow will publish the book, from
    # which repository, and which line to change for another; neither calls the site live.
    readme = (ROOT / "README.md").read_text()
    cite = (ROOT / "book" / "how-to-cite.md").read_text()
    published = readme[readme.index("## Published site") :]
    published = published[: published.index("\n## ")]
    assert BASEURL in published and "html.baseurl" in published
    for text in (published, cite):
        flat = " ".join(text.split())
        assert f"once the repository is on GitHub as `{owner}/{repo}`" in flat.replace(
            "once this repository", "once the repository"
        ), text
        assert "html.baseurl" in flat
        assert "is read online at" not in flat and "is published at" not in flat


def test_the_publishing_workflow_is_valid():
    result = check_jsonschema("vendor.github-workflows", WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_publishing_workflow_tests_then_deploys_the_site_with_the_pdf():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["main"]
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    runs = [step["run"] for step in build["steps"] if "run" in step]
    uses = [step.get("uses", "").split("@")[0] for step in build["steps"]]
    # The README's test command, through .ci/run: its apt packages, then `make test`, with CI=true.
    # Nothing else runs: `make test` builds the PDF (CI=true), then the site, which copies the
    # PDF in and offers it on every page, and tests the site as it is deployed.
    assert runs == ["bash .ci/run"], runs
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert build["env"]["CI"] == "true"
    recipe = (ROOT / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert recipe.index("$(MAKE) pdf") < recipe.index("jupyter-book build") < recipe.index("pytest")
    assert uses == ["actions/checkout", "", "actions/upload-pages-artifact"], uses
    upload = build["steps"][uses.index("actions/upload-pages-artifact")]
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    # A hand-run from another branch tests it and stops there: only main is deployed.
    assert deploy["if"] == "github.ref == 'refs/heads/main'"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert [step["uses"].split("@")[0] for step in deploy["steps"]] == ["actions/deploy-pages"]
