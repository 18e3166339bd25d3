from vmlayout.cli import main

raise SystemExit(main())
