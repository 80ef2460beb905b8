# etc/local.mk - configs, presets, example manifests and systemd units.
EXTRA_DIST += etc systemd
