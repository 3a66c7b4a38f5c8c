"""python -m mpg_cli"""

from mpg_cli.cli import main

main()
