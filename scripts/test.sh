#!/usr/bin/env bash
# Run the test suite of neulens_ros (sets up first; the setup is idempotent and quick when
# nothing changed).
#
#   scripts/test.sh            # the default suite: everything not marked slow
#   scripts/test.sh --slow     # only the slow tests (training smoke runs, link experiment...)
#   scripts/test.sh --all      # both
#   scripts/test.sh -- ARGS    # extra pytest arguments (e.g. -- -k bridge -x)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NEULENS_VENV:-$ROOT/.venv}"
marker='not slow'
while [ $# -gt 0 ]; do
  case "$1" in
    --slow) marker='slow' ;;
    --all) marker='' ;;
    --) shift; break ;;
    *) break ;;
  esac
  shift
done

"$ROOT/scripts/setup.sh" --no-run
cd "$ROOT"
set +e
"$VENV/bin/python" -m pytest ${marker:+-m "$marker"} "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo '##############################################################################'
  echo "# WARNING: pytest collected no tests for the selection '${marker:-all}'."
  echo '# Nothing was tested. This is not a failure of the code, but check the selection.'
  echo '##############################################################################'
  exit 0
fi
exit "$code"
