# The Erlang client: the OTP application `epmdpxy` (fixture/erlang/epmdpxy/), its
# EUnit and Common Test suites and its edoc reference.  Included from the
# top Makefile (`include mk/erlang.mk`); uses its B, PREFIX, BINDIR,
# DESTDIR, VERSION, `deps` and $(B)/epmdpxy, and hooks itself into `all`,
# `check`, `install` and `uninstall`.
#
#   make erlang         the application in $(B)/erlang/lib/epmdpxy-<vsn>
#                       (ERL_LIBS=$(B)/erlang/lib finds it)
#   make erlang-check   EUnit, then every CT suite (CT_SUITES=... picks)
#   make erlang-doc     edoc into $(B)/erlang/lib/epmdpxy-<vsn>/doc
#   make install        also puts it in $(PREFIX)/lib/erlang/lib/epmdpxy-<vsn>

ERL_SRC      := fixture/erlang/epmdpxy
ERL_COMMA    := ,
ERL_EMPTY    :=
ERL_SPACE    := $(ERL_EMPTY) $(ERL_EMPTY)
ERL_VSN      := $(shell sed -n 's/^ *{vsn, *"\([^"]*\)"}.*/\1/p' $(ERL_SRC)/src/epmdpxy.app.src)
ERL_APP      := $(B)/erlang/lib/epmdpxy-$(ERL_VSN)
ERL_MODS     := $(patsubst $(ERL_SRC)/src/%.erl,%,$(wildcard $(ERL_SRC)/src/*.erl))
ERL_BEAMS    := $(ERL_MODS:%=$(ERL_APP)/ebin/%.beam)
ERL_TEST_DIR := $(B)/erlang/test
ERL_TESTS    := $(patsubst $(ERL_SRC)/test/%.erl,%,$(wildcard $(ERL_SRC)/test/*.erl))
ERL_EUNIT    := $(filter %_tests,$(ERL_TESTS))
CT_SUITES    ?= $(filter %_SUITE,$(ERL_TESTS))
ERLC_FLAGS   := -Werror +debug_info +warn_export_vars +warn_unused_import
ERL_LIBDIR   ?= $(PREFIX)/lib/erlang/lib
ERL_INSTDIR  := $(ERL_LIBDIR)/epmdpxy-$(ERL_VSN)
# what the tests need to find the daemon and the application
ERL_TEST_ENV := EPMDPXY=$(abspath $(B)/epmdpxy) ERL_LIBS=$(abspath $(B)/erlang/lib) \
                EPX_PRELOAD=$(abspath $(B)/libepx_preload.so)

.PHONY: erlang erlang-check erlang-eunit erlang-ct erlang-doc erlang-install erlang-uninstall
all: erlang
check: erlang-check
install: erlang-install
uninstall: erlang-uninstall

erlang: $(ERL_BEAMS) $(ERL_APP)/ebin/epmdpxy.app

$(ERL_APP)/ebin/%.beam: $(ERL_SRC)/src/%.erl
	@mkdir -p $(dir $@)
	erlc $(ERLC_FLAGS) -o $(dir $@) $<

# The .app: the module list filled in, the bindir the daemon is installed
# in (one of the places epmdpxy_daemon:find_executable/0 looks) and the
# directory of the shim (epmdpxy_cluster:find_preload/0).
# The version must be the project's.
$(ERL_APP)/ebin/epmdpxy.app: $(ERL_SRC)/src/epmdpxy.app.src $(wildcard $(ERL_SRC)/src/*.erl) $(B)/paths.stamp
	@if [ "$(ERL_VSN)" != "$(VERSION)" ]; then \
	  echo "$<: vsn $(ERL_VSN) is not the project's VERSION $(VERSION)" >&2; exit 1; fi
	@mkdir -p $(dir $@)
	sed -e 's|{modules, \[\]}|{modules, [$(subst $(ERL_SPACE),$(ERL_COMMA),$(ERL_MODS))]}|' \
	    -e 's|{env, \[\]}|{env, [{bindir, "$(BINDIR)"}, {preloaddir, "$(PRELOADDIR)"}]}|' $< > $@.tmp
	erl -noshell -eval 'case file:consult("$@.tmp") of {ok, [_]} -> halt(0); E -> io:format("~p~n", [E]), halt(1) end.'
	mv $@.tmp $@

$(ERL_TEST_DIR)/%.beam: $(ERL_SRC)/test/%.erl $(ERL_BEAMS)
	@mkdir -p $(dir $@)
	erlc $(ERLC_FLAGS) -pa $(ERL_APP)/ebin -o $(dir $@) $<

ERL_TEST_BEAMS := $(ERL_TESTS:%=$(ERL_TEST_DIR)/%.beam)

erlang-check: erlang-eunit erlang-ct

erlang-eunit: deps
	@$(MAKE) --no-print-directory $(B)/epmdpxy erlang $(ERL_TEST_BEAMS)
	$(ERL_TEST_ENV) erl -noshell -pa $(ERL_TEST_DIR) -eval \
	  'case eunit:test([$(subst $(ERL_SPACE),$(ERL_COMMA),$(ERL_EUNIT))], [verbose]) of ok -> halt(0); _ -> halt(1) end.'

# Suites run from $(B) (compiled there, not by ct_run in the source tree),
# in a VM that is not a node: ct_run would make it `ct@host' and start the
# system's epmd on 4369; ct:run_test/1 is what ct_run runs.  Logs in
# $(B)/erlang/ct_logs/index.html.
ERL_CT_RUN := R = ct:run_test([{dir, "$(ERL_TEST_DIR)"}, {suite, [$(subst $(ERL_SPACE),$(ERL_COMMA),$(strip $(CT_SUITES)))]}, \
                 {logdir, "$(B)/erlang/ct_logs"}, {auto_compile, false}]), \
  io:format("~p~n", [R]), \
  halt(case R of {_, 0, {_, 0}} -> 0; _ -> 1 end).
erlang-ct: deps
	@$(MAKE) --no-print-directory $(B)/epmdpxy $(B)/libepx_preload.so erlang $(ERL_TEST_BEAMS)
	@mkdir -p $(B)/erlang/ct_logs
	$(ERL_TEST_ENV) erl -noshell -pa $(abspath $(ERL_TEST_DIR)) -eval '$(ERL_CT_RUN)'

ERL_EDOC := try edoc:application(epmdpxy, "$(ERL_SRC)", [{dir, "$(ERL_APP)/doc"}, {preprocess, true}]) of \
  ok -> halt(0) catch C:E -> io:format("edoc: ~p:~p~n", [C, E]), halt(1) end.
erlang-doc: $(ERL_APP)/doc/index.html
$(ERL_APP)/doc/index.html: $(wildcard $(ERL_SRC)/src/*.erl) $(ERL_SRC)/doc/overview.edoc
	@mkdir -p $(dir $@)
	erl -noshell -eval '$(ERL_EDOC)'

erlang-install: erlang erlang-doc
	install -d $(DESTDIR)$(ERL_INSTDIR)/ebin $(DESTDIR)$(ERL_INSTDIR)/src $(DESTDIR)$(ERL_INSTDIR)/doc
	install -m 644 $(ERL_BEAMS) $(ERL_APP)/ebin/epmdpxy.app $(DESTDIR)$(ERL_INSTDIR)/ebin/
	install -m 644 $(ERL_SRC)/src/*.erl $(ERL_SRC)/src/epmdpxy.app.src $(DESTDIR)$(ERL_INSTDIR)/src/
	install -m 644 $(ERL_APP)/doc/*.html $(ERL_APP)/doc/*.css $(ERL_APP)/doc/*.png $(DESTDIR)$(ERL_INSTDIR)/doc/

erlang-uninstall:
	rm -rf $(DESTDIR)$(ERL_INSTDIR)
