from finesift.cli.app import main

main()
