#!/usr/bin/env bash
# Makes sure headless Chromium and ChromeDriver are installed for the browser
# end-to-end test (crates/sessio-demo/tests/browser.rs): installs Debian's chromium and
# chromium-driver with apt-get if /usr/bin/chromedriver is missing. The test starts
# chromedriver itself. Under CI=true a failed install fails the run; elsewhere it is a
# warning (and the browser test then fails, saying why).
set -euo pipefail
if [ -x /usr/bin/chromedriver ] && [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "chromium: installing chromium and chromium-driver" >&2
if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
  && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
echo "chromium: could not install chromium/chromium-driver" >&2
if [ "${CI:-}" = "true" ]; then
  exit 1
fi
exit 0
