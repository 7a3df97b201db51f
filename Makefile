# Omniroute developer commands. Every target creates the virtual environment
# (.venv) and installs what it needs on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)/lib:$(CURDIR)/services/ingest:$(CURDIR)/services/router:$(CURDIR)/services/agent-state:$(CURDIR)/services/desk:$(CURDIR)/simulator

.PHONY: run test unit integration chaos lint proto proto-check bench bench-agent-state screenshots clean tools deploy-setup simulate bench-sim bench-wait validate-sim kafka-broker kafka-tier

# Apache Kafka from Maven Central for the Kafka test tier and BROKER=kafka:
# the version of the compose file's image, jars cached (not committed) here.
KAFKA_VERSION := $(shell sed -n 's|^ *image: apache/kafka:\([0-9][0-9.]*\).*|\1|p' deploy/docker-compose.yml | head -n 1)
KAFKA_JARS    := .cache/kafka/$(KAFKA_VERSION)
BROKER        ?= tansu

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start the broker, the four services (the desk included) and a demo that shows routing.
## Options through ARGS, e.g. make run ARGS=--no-demo, make run ARGS="--count 8".
## BROKER=kafka runs Apache Kafka (needs Java; fetches its jars with Maven once).
run: $(STAMP) $(if $(filter kafka,$(BROKER)),kafka-broker)
	$(PY) -m devstack --broker $(BROKER) $(ARGS)

## Lint, check the generated code, then run every test: the integration tests
## on the embedded broker and, where Java is installed, on Apache Kafka. Four
## pytest-xdist workers: the broker tests in groups of one tier each, every group
## in order on one worker with its own broker, side by side; the tests without a
## broker fill in around them (tests/conftest.py).
test: $(STAMP) proto-check lint tools kafka-tier
	$(PY) -m pytest -n 4 --dist loadgroup

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP) tools kafka-tier
	$(PY) -m pytest tests/integration

## Install the tools the tests need beyond Python (.ci/tools) where possible;
## a tier whose tool is still missing is skipped and named.
tools:
	@.ci/ensure-tools

## The chaos suite: faults on the real processes under load, every scenario on every
## broker of the `broker` fixture. Its short subset (chaos_smoke) runs in `make test`.
chaos: $(STAMP) tools kafka-tier
	$(PY) -m pytest tests/chaos --chaos --durations=0

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

## Regenerate the protobuf and gRPC code in lib/omniroute/v1 from proto/.
proto: $(STAMP)
	rm -f lib/omniroute/v1/*_pb2*.py lib/omniroute/v1/*_pb2*.pyi
	$(PY) -m grpc_tools.protoc -I proto --python_out=lib --pyi_out=lib proto/omniroute/v1/*.proto
	$(PY) -m grpc_tools.protoc -I proto --grpc_python_out=lib proto/omniroute/v1/agent_state.proto

## Fail when the committed generated code differs from what proto/ gives.
proto-check: $(STAMP)
	@tmp=$$(mktemp -d) && \
	$(PY) -m grpc_tools.protoc -I proto --python_out=$$tmp --pyi_out=$$tmp proto/omniroute/v1/*.proto && \
	$(PY) -m grpc_tools.protoc -I proto --grpc_python_out=$$tmp proto/omniroute/v1/agent_state.proto && \
	for f in $$tmp/omniroute/v1/*; do \
	  cmp -s $$f lib/omniroute/v1/$$(basename $$f) || { echo "generated code out of date: $$(basename $$f); run 'make proto'"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp; echo "generated code matches proto/"

## A deployment's secrets: agent-state tokens, a local CA and certificates, Grafana's
## password, in deploy/.env and deploy/secrets/ (e.g. ARGS="--desk ann --kubernetes").
deploy-setup: $(STAMP)
	$(PY) -m omniroute.provision --dir deploy $(ARGS)

## Retake the README's screenshots of the desk and the wallboard (a browser test).
screenshots: $(STAMP) tools
	OMNIROUTE_SCREENSHOTS=1 $(PY) -m pytest tests/integration/test_desk_browser.py -k works_an_inquiry

## End-to-end benchmark through the embedded broker (BROKER=kafka: Apache Kafka), ~15 min;
## ARGS=--quick runs every scenario smaller, ARGS=--only=burst,scale some of them.
bench: $(STAMP) $(if $(filter kafka,$(BROKER)),kafka-broker)
	$(PY) -m benchmarks.router_bench --broker $(BROKER) $(ARGS)

## Fetch Apache Kafka's jars with Maven into $(KAFKA_JARS) (once).
kafka-broker: $(KAFKA_JARS)/.complete

$(KAFKA_JARS)/.complete: tests/kafka/pom.xml deploy/docker-compose.yml
	@command -v java >/dev/null || { echo "Apache Kafka needs Java 17+ (e.g. apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "fetching Apache Kafka needs Maven (e.g. apt-get install maven)"; exit 1; }
	rm -rf $(KAFKA_JARS).part
	mvn -B -q -Dstyle.color=never -f tests/kafka/pom.xml -Dkafka.version=$(KAFKA_VERSION) \
	  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(KAFKA_JARS).part
	rm -rf $(KAFKA_JARS) && mv $(KAFKA_JARS).part $(KAFKA_JARS) && touch $@

# The jars for the Kafka test tier where Java and Maven are installed (`tools`
# installs them where it can, .ci/tools); without them the tests run on the
# embedded broker alone and say so.
kafka-tier:
	@if command -v java >/dev/null && command -v mvn >/dev/null; then \
	  $(MAKE) --no-print-directory kafka-broker; \
	else echo "no Java or Maven: the Apache Kafka test tier will not run"; fi

## What-if simulation of a scenario on the router's core; results in OUT (default sim-out/).
## make simulate SCENARIO=simulator/examples/contact-centre.yaml [ROUTING=...] [OUT=...] [REPLICATIONS=5]
SCENARIO     ?= simulator/examples/contact-centre.yaml
ROUTING      ?= simulator/examples/contact-centre-routing.yaml
OUT          ?= sim-out
REPLICATIONS ?= 5
simulate: $(STAMP)
	$(PY) -m omniroute_simulator run --routing $(ROUTING) --scenario $(SCENARIO) --replications $(REPLICATIONS) --out $(OUT)

## The simulator and Ciw on the same M/M/c model: simulated contacts per second.
## agent-state alone: reservations/s (single, concurrent, batched) and restart time after a long history.
bench-agent-state: $(STAMP) $(if $(filter kafka,$(BROKER)),kafka-broker)
	$(PY) -m benchmarks.agent_state_bench --broker $(BROKER)

bench-sim: $(STAMP)
	$(PY) -m benchmarks.sim_bench

## The estimated wait ingest tells customers against the wait they really had (simulator).
bench-wait: $(STAMP)
	$(PY) -m benchmarks.wait_estimate

## The full Erlang validation grid at the issue's tolerances (long: minutes).
validate-sim: $(STAMP)
	OMNIROUTE_SIM_VALIDATION=full $(PY) -m pytest tests/simulator -x -s -k validation -p no:cacheprovider -o timeout=0

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .cache
