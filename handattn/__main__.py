from handattn._cli import run
from handattn.cli import main

run(main)
