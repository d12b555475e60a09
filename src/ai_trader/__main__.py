from ai_trader.cli import main

raise SystemExit(main())
