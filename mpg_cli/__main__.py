"""python -m mpg_cli"""

from mpg_cli.entry import main

main()
