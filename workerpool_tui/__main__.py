from workerpool_tui.cli import main

raise SystemExit(main())
