"""The `biomedica` command line: one entry point, one module per command group.

This package is the only code that imports typer and rich. Each command builds a typed
config, imports its stage inside the function body and calls the stage's library function,
then renders what it returns (`cli.summary`); so `biomedica --help` imports no stage, no
torch, no pyarrow. Refusals go through `cli.errors.fail`: one red line and exit code 2.
"""

from __future__ import annotations

from biomedica.cli.groups import command_group

app = command_group(
    "biomedica", "Turn PubMed Central Open Access into a streaming biomedical image-caption archive."
)


def _register_commands() -> None:
    from biomedica.cli import annotate, curate, demo, enrich, eval, index, ingest, inspect, publish, select, serve, train

    app.command()(ingest.ingest)
    app.command()(enrich.enrich)
    app.command()(inspect.inspect)
    app.command()(demo.demo)
    app.add_typer(curate.curate_app, name="curate", help="Dedup, quality flags, embeddings, clusters, concept labels.")
    app.command(help="Build a training subset with SQL over archive + annotations.")(select.select)
    app.command(help="The expert annotation web app for clusters.")(annotate.annotate)
    app.command(help="Build or update the search index (keyword + vectors) of an archive.")(index.index)
    app.command(help="Search the archive in the browser: keyword, semantic, hybrid; figure view, export.")(serve.serve)
    app.add_typer(train.app, name="train", help="Streaming continual pre-training on OpenCLIP (YAML config).")
    app.add_typer(eval.app, name="eval", help="Zero-shot classification and retrieval benchmarks.")
    app.command(help="Publish the archive as a Hugging Face dataset repository (folder or hub) with a dataset card.")(
        publish.publish)


_register_commands()
