# tests/local.mk - integration tests (shell drivers under tests/integration).
TESTS += tests/integration/programs.sh
EXTRA_DIST += tests/integration tests/unit/README
TESTS += tests/integration/listeners-hostile.sh
