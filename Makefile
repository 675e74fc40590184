# The two commands a newcomer needs: `make run` and `make test`.

PRESET ?= $(if $(CI),ci,dev)
BUILD_DIR ?= build/$(PRESET)
CONFIG ?= etc/collectord.ini

.PHONY: deps build run test clean

deps:
	@scripts/install-deps.sh

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET)

run: build
	@mkdir -p var
	$(BUILD_DIR)/bin/collectord --config=$(CONFIG)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure --timeout 300 -j2

clean:
	rm -rf build var
