# etc/local.mk - configs, presets, example manifests, the shipped tokenizer
# and systemd units.
EXTRA_DIST += etc systemd

# Data the programs find at run time (exepath_find_data): the default
# tokenizer of `llmd-engine make-model`, presets, examples.
install-data-local:
	$(MKDIR_P) $(DESTDIR)$(pkgdatadir)
	cd $(srcdir)/etc && for d in tokenizers presets examples slurm; do \
		[ -d "$$d" ] || continue; \
		find "$$d" -type f | while read -r f; do \
			$(MKDIR_P) "$(DESTDIR)$(pkgdatadir)/$$(dirname "$$f")"; \
			$(INSTALL_DATA) "$$f" "$(DESTDIR)$(pkgdatadir)/$$f"; \
		done; \
	done
	$(MKDIR_P) $(DESTDIR)$(sysconfdir)/llmd
	for f in llmd.env agent.env router.env; do \
		[ -f "$(DESTDIR)$(sysconfdir)/llmd/$$f" ] || \
			$(INSTALL_DATA) $(srcdir)/etc/$$f "$(DESTDIR)$(sysconfdir)/llmd/$$f"; \
	done

uninstall-local:
	rm -rf $(DESTDIR)$(pkgdatadir)/tokenizers $(DESTDIR)$(pkgdatadir)/presets \
		$(DESTDIR)$(pkgdatadir)/examples $(DESTDIR)$(pkgdatadir)/slurm
	for f in llmd.env agent.env router.env; do rm -f "$(DESTDIR)$(sysconfdir)/llmd/$$f"; done

# systemd units, with the install paths substituted.
systemdsystemunit_DATA += systemd/llmd.service systemd/llmd-agent.service systemd/llmd-router.service
CLEANFILES += systemd/llmd.service systemd/llmd-agent.service systemd/llmd-router.service
systemd/%.service: $(srcdir)/systemd/%.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && sed -e 's|[@]bindir[@]|$(bindir)|g' \
		-e 's|[@]sysconfdir[@]|$(sysconfdir)|g' -e 's|[@]docdir[@]|$(docdir)|g' $< > $@

TESTS += tests/integration/systemd-units.sh
EXTRA_DIST += tests/integration/systemd-units.sh
