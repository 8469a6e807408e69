"""`vreason export-recipe` (`vreason_hf.cli.export_recipe`): the Hub recipe folder, refused over a non-empty one."""

from __future__ import annotations


def test_export_recipe_builds_the_folder(cli, tmp_path):
    folder = tmp_path / "recipe"
    code, out, err = cli(["export-recipe", str(folder)])
    assert code == 0, err
    assert (folder / "custom_generate" / "generate.py").is_file() and (folder / "README.md").is_file()
    assert "custom_generate/generate.py" in out
    cli(["export-recipe", str(folder)]).assert_one_line_error("not empty", "--overwrite")
    code, _, _ = cli(["export-recipe", str(folder), "--overwrite"])
    assert code == 0
