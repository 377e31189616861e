from sme2tui.cli import main

raise SystemExit(main())
