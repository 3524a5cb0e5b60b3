from heartml.cli import run

run()
