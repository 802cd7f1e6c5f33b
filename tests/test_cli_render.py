"""Tables show text as it is: a path, a run name or generated text holding square brackets is never read as rich
markup (which would drop it — "[flags 1a2b]" — or fail outright — "[/]")."""

from rich.console import Console

from gptscratch.cli.render import markup_table, table


def rendered(renderable) -> str:
    console = Console(width=200, record=True, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def test_table_cells_and_titles_are_literal():
    text = rendered(table("run [x]", ["name [y]", "value"], [["AMD EPYC [flags 1a2b]", "closing [/] tag [bold]"]]))
    for literal in ("run [x]", "name [y]", "AMD EPYC [flags 1a2b]", "closing [/] tag [bold]"):
        assert literal in text


def test_markup_tables_keep_their_styles():
    text = rendered(markup_table(None, ["token"], [["[bold green]the[/]"]]))
    assert "the" in text and "[bold green]" not in text
