# mpi_common.sh — what the MPI test scripts share; sourced by tests/test_mpi_*.sh after
# `LRA=$1`. Sets MPIRUN (or fails the test when mpirun is missing), TMP (removed on exit, with
# the mpirun whose pid the script keeps in MP killed first), the Open MPI environment for root
# in CI containers on loopback, MPI (mpirun with oversubscription and no binding; add -np), and
# check "description" 'shell condition', which counts into passed and failed.
MPIRUN=$(command -v mpirun) || { echo "FAIL: mpirun not found"; exit 1; }
TMP=$(mktemp -d)
MP=""
mpi_cleanup() { [ -n "$MP" ] && kill -9 "$MP" 2>/dev/null; rm -rf "$TMP"; }
trap mpi_cleanup EXIT
# Root in CI containers; loopback only; ranks on whatever cores there are.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Shared memory without cross-memory attach: containers often forbid the ptrace it needs.
export OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
MPI=("$MPIRUN" --oversubscribe --bind-to none)
passed=0
failed=0
check() { if eval "$2"; then echo "PASS: $1"; passed=$((passed + 1)); else
    echo "FAIL: $1"; failed=$((failed + 1)); fi; }
