"""Start-up hook for subprocesses of the test session: block internet sockets."""

import os

if os.environ.get("LIFEIQA_TEST_NETBLOCK") == "1":
    import lifeiqa_netblock

    lifeiqa_netblock.install()
