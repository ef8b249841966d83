# ngx_fhir: build, run the demo, test.
#   make run    install what is missing, build, start the demo gateway
#   make stop   stop it
#   make test   install, build, run the unit and integration tests

NGINX_SRC   ?= /usr/share/nginx/src
BUILD       := build
PORT        ?= 8080
CC          ?= gcc
CFLAGS_CORE := -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -g -Wall -Wextra -Werror \
               -Ingx_fhir_module/core

CORE_SRCS   := $(wildcard ngx_fhir_module/core/*.c)
CORE_LIBS   := -lcrypto -lcjson
CORE_HDRS   := $(wildcard ngx_fhir_module/core/*.h)
MODULE_SRCS := $(wildcard ngx_fhir_module/*.c ngx_fhir_module/*.h) config

MODULE      := $(BUILD)/ngx_http_fhir_module.so
TOOLS       := $(BUILD)/fhir-convert $(BUILD)/fhir-audit-verify $(BUILD)/bench-core
# test_core_evp: the same checks with the audit chain's EVP_MAC path (the
# one builds without OpenSSL 3.0's deprecated SHA-256 functions take)
UNIT_TESTS  := $(BUILD)/test_core $(BUILD)/test_core_evp

.PHONY: all deps run stop test unit integration clean bench fuzz fuzz-regressions test-asan test-valgrind

all: $(MODULE) $(TOOLS) $(UNIT_TESTS)

deps:
	@scripts/install-deps

$(BUILD)/nginx-src/configure:
	@mkdir -p $(BUILD)
	rm -rf $(BUILD)/nginx-src
	cp -r $(NGINX_SRC) $(BUILD)/nginx-src

$(BUILD)/nginx-src/objs/Makefile: $(BUILD)/nginx-src/configure config
	cd $(BUILD)/nginx-src && ./configure --with-compat --with-threads \
	    --with-http_ssl_module --with-cc-opt="-O2" \
	    --add-dynamic-module=$(CURDIR) > ../configure.log 2>&1 \
	    || { tail -20 ../configure.log; exit 1; }

$(MODULE): $(BUILD)/nginx-src/objs/Makefile $(CORE_SRCS) $(CORE_HDRS) $(MODULE_SRCS)
	$(MAKE) -s -C $(BUILD)/nginx-src -f objs/Makefile modules
	cp $(BUILD)/nginx-src/objs/ngx_http_fhir_module.so $@.tmp && mv $@.tmp $@

$(BUILD)/fhir-convert: ngx_fhir_module/tools/fhir_convert_main.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_CORE) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

$(BUILD)/fhir-audit-verify: ngx_fhir_module/tools/fhir_audit_verify.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_CORE) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

$(BUILD)/bench-core: ngx_fhir_module/tools/bench_core.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_CORE) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

$(BUILD)/test_core: t/unit/test_core.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_CORE) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

$(BUILD)/test_core_evp: t/unit/test_core.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_CORE) -DFHIR_AUDIT_EVP -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

run: deps all
	@PORT=$(PORT) scripts/gateway start
	@echo
	@echo "ngx_fhir demo gateway: http://127.0.0.1:$(PORT)/"
	@echo "  partners: /fhir/redox/ (STU3)  /fhir/datica/ (DSTU2)  /fhir/infor/ (DSTU2)  /fhir/dapasoft/ (STU3)"
	@echo "  try:  TOKEN=\$$(PORT=$(PORT) scripts/demo-token datica)"
	@echo "        curl -s -H \"Authorization: Bearer \$$TOKEN\" http://127.0.0.1:$(PORT)/fhir/datica/Patient/smart-1288992"
	@echo "        curl -s http://127.0.0.1:$(PORT)/fhir/datica/metadata"
	@echo "  logs: $(BUILD)/demo/logs/ (error.log, access.log, audit.log, mock-*.log)"
	@echo "  stop: make stop"

stop:
	@scripts/gateway stop
	@echo "ngx_fhir demo stopped"

SCHEMA_DEPS := $(BUILD)/schema/node_modules/.installed

# test-only npm dependencies (the R4 JSON schema validator), from the lock file
$(SCHEMA_DEPS): t/schema/package.json t/schema/package-lock.json
	@mkdir -p $(BUILD)/schema
	cp t/schema/package.json t/schema/package-lock.json $(BUILD)/schema/
	cd $(BUILD)/schema && npm ci --silent --no-audit --no-fund
	@touch $@

# fuzz targets (t/fuzz): replayed under ASan/UBSan on every "make test"
FUZZ_TARGETS := stream request jwt json
FUZZ_REGRESS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/regress_%)
SAN_FLAGS    := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all

$(BUILD)/fuzz/regress_%: t/fuzz/fuzz_%.c t/fuzz/run_regressions.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(BUILD)/fuzz
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(SAN_FLAGS) -Ingx_fhir_module/core \
	    -o $@ $< t/fuzz/run_regressions.c $(CORE_SRCS) $(CORE_LIBS)

fuzz-regressions: $(FUZZ_REGRESS)
	$(BUILD)/fuzz/regress_stream t/fuzz/regress/stream t/data/corpus/dstu2 t/data/corpus/stu3
	$(BUILD)/fuzz/regress_request t/fuzz/regress/request
	$(BUILD)/fuzz/regress_jwt t/fuzz/regress/jwt
	$(BUILD)/fuzz/regress_json t/fuzz/regress/json t/data/corpus/dstu2 t/data/corpus/stu3

# libFuzzer (Debian's clang), FUZZ_SECONDS each, seeded from the corpus;
# a crash is saved under build/fuzz/ to be fixed and kept in t/fuzz/regress/
FUZZ_SECONDS ?= 60
fuzz:
	@EXTRA_PKGS=clang scripts/install-deps
	@mkdir -p $(BUILD)/fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
	    clang -fsanitize=fuzzer,address,undefined -g -O1 -Ingx_fhir_module/core \
	        -o $(BUILD)/fuzz/fuzz_$$t t/fuzz/fuzz_$$t.c $(CORE_SRCS) $(CORE_LIBS); \
	    mkdir -p $(BUILD)/fuzz/corpus_$$t; \
	    echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	    $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	        -artifact_prefix=$(BUILD)/fuzz/crash_$$t- \
	        $(BUILD)/fuzz/corpus_$$t t/fuzz/regress/$$t \
	        $$( [ $$t = stream ] || [ $$t = json ] && echo t/golden/dstu2 t/golden/stu3 ) 2>&1 | tail -3; \
	done

test: deps all $(SCHEMA_DEPS) fuzz-regressions
	@set -e; for t in $(UNIT_TESTS); do $$t; done
	prove -r t/

unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do $$t; done

bench: all
	@EXTRA_PKGS=wrk scripts/install-deps
	scripts/bench

# the module with AddressSanitizer and UBSan, loaded into the stock nginx
# with the sanitizer runtimes preloaded, and the whole integration suite
ASAN_MODULE := $(BUILD)/asan/ngx_http_fhir_module.so

$(BUILD)/asan-src/objs/Makefile: $(BUILD)/nginx-src/configure config
	rm -rf $(BUILD)/asan-src && cp -r $(NGINX_SRC) $(BUILD)/asan-src
	cd $(BUILD)/asan-src && ./configure --with-compat --with-threads \
	    --with-http_ssl_module \
	    --with-cc-opt="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    --with-ld-opt="-fsanitize=address,undefined" \
	    --add-dynamic-module=$(CURDIR) > ../asan-configure.log 2>&1 \
	    || { tail -20 ../asan-configure.log; exit 1; }

$(ASAN_MODULE): $(BUILD)/asan-src/objs/Makefile $(CORE_SRCS) $(CORE_HDRS) $(MODULE_SRCS)
	$(MAKE) -s -C $(BUILD)/asan-src -f objs/Makefile modules
	@mkdir -p $(BUILD)/asan
	cp $(BUILD)/asan-src/objs/ngx_http_fhir_module.so $@.tmp && mv $@.tmp $@

test-asan: deps all $(SCHEMA_DEPS) $(ASAN_MODULE) fuzz-regressions
	rm -f $(BUILD)/asan/asan.* $(BUILD)/asan/ubsan.*
	FHIR_NGINX=$(CURDIR)/scripts/nginx-asan MODULE=$(CURDIR)/$(ASAN_MODULE) prove -r t/
	@if ls $(BUILD)/asan/asan.* $(BUILD)/asan/ubsan.* >/dev/null 2>&1; then \
	    echo "sanitizer reports:"; cat $(BUILD)/asan/asan.* $(BUILD)/asan/ubsan.* 2>/dev/null | head -60; exit 1; \
	else echo "test-asan: no sanitizer report"; fi

# the routing, conversion and fault tests with every nginx process under memcheck:
# no block lost on a request path (nginx's own start-up leaks are known)
test-valgrind: deps all
	rm -rf $(BUILD)/valgrind
	FHIR_NGINX=$(CURDIR)/scripts/nginx-valgrind prove t/01-routing.t t/02-conversion.t t/10-faults.t
	@sleep 2; if grep -l -A20 "definitely lost in" $(BUILD)/valgrind/vg.* 2>/dev/null \
	        | xargs -r grep -A20 "definitely lost in" \
	        | grep -E "ngx_http_core_(access|content)_phase|ngx_http_fhir|fhir_|ngx_event_pipe|ngx_http_upstream"; then \
	    echo "test-valgrind: memory lost on a request path"; exit 1; \
	else echo "test-valgrind: no memory lost on a request path"; fi

clean:
	rm -rf $(BUILD)
