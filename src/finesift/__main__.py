from finesift.cli.app import main

if __name__ == "__main__":  # not when a spawned parser process imports the main module
    main()
