# Two commands do all set-up on a fresh machine:
#   make demo   the whole chain on the built-in faces, ends with results/demo/report.html
#   make test   the test suite (what .ci/run calls)
# `make demo FRESH=1` removes the demo's outputs first and starts over.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RESULTS ?= results
PYTEST_ARGS ?=

.PHONY: setup test demo demo-chain demo-clean lint bench groundtruth

# (Re)install when the venv is missing or pyproject.toml changed.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	@touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Ground truth (issue: explain and validate): per region, a synthetic set whose class cue lies
# only there, tiny VGG-16-bn variants trained on it, relevance mass/rank accuracy per composite.
GT_REGIONS ?= eyes mouth
GT_VARIANTS := vgg16-bn-w0.0625-none-gender-s0 vgg16-bn-w0.0625-none-gender-s1
GT_COMPOSITES ?= epsilon_plus_flat epsilon_alpha2_beta1_flat epsilon_gamma_box
groundtruth: $(STAMP)
	@for r in $(GT_REGIONS); do root=$(RESULTS)/groundtruth-$$r; \
	  test -d $$root/stimuli/synth128 || $(PY) -m stimuli synth --region $$r --size 128 --name synth128 \
	    --n-per-class 200 --seed 1 --contrast 0.06 --out $$root || exit 1; \
	  $(PY) -m model train model/configs/groundtruth.yaml --out $$root || exit 1; \
	  for v in $(GT_VARIANTS); do for c in $(GT_COMPOSITES); do \
	    $(PY) -m model groundtruth --variant $$v --composite $$c --out $$root || exit 1; \
	  done; done; done

bench: $(STAMP)
	$(PY) benchmarks/bubbles.py
	$(PY) benchmarks/trial_prep.py
	$(PY) benchmarks/classification_images.py
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/explain_throughput.py --quick

# ---------------------------------------------------------------------------------------------
# The demo: every step is a `python -m ...` command printed as it starts; a step whose output
# exists is skipped (the commands themselves also skip finished variants and sessions).
DEMO_SET := orl128
DEMO_GRID := model/configs/demo.yaml
DEMO_EVAL := model/configs/demo_evaluate.yaml
DEMO_BUBBLES := experiments/bubbles_gender.yaml
DEMO_SIMILARITY := experiments/similarity.yaml
DEMO_REPORT := analysis/configs/demo.yaml
DEMO_TEMPLATES := 01 02 03 04 05 06
DEMO_MODEL_OBSERVERS := vgg16-imagenet-gender-s0 vgg16-faces-gender-s0
DEMO_SIMILARITY_OBSERVERS := 01 02 03 04 05 06 07 08 09 10
# the nulls of the map-similarity findings: each variant's maps with its trained layers
# re-initialised and untrained, and with every layer re-initialised, on a seeded subset of images
DEMO_BASELINES := untrained random
DEMO_BASELINE_IMAGES := 64
STEP := $(RESULTS)/.demo-steps
# every variant of the grid, not the face-pretraining source (task slot 'faces'): a shell command
DEMO_TARGETS = $(PY) -m model train $(DEMO_GRID) --list | grep -v -- '-faces-s[0-9]*$$'
SIM := $(RESULTS)/simulated

demo: $(STAMP)
	@if [ -n "$(FRESH)" ]; then $(MAKE) --no-print-directory demo-clean; fi
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory demo-chain && \
	echo "demo finished in $$(( $$(date +%s) - start )) s: open $(RESULTS)/demo/report.html"

demo-clean:
	@echo "removing the demo's outputs under $(RESULTS)/"
	rm -rf $(STEP) $(RESULTS)/demo $(RESULTS)/stimuli/$(DEMO_SET) $(RESULTS)/evaluate/demo_evaluate \
	  $(RESULTS)/sheets/demo $(SIM)/sub-demo* $(SIM)/sub-cnn*
	for v in $$($(PY) -m model train $(DEMO_GRID) --list); do \
	  rm -rf $(RESULTS)/models/$$v $(RESULTS)/relevance/$$v $(RESULTS)/rdm/$$v; done

demo-chain: $(RESULTS)/demo/report.html

$(STEP)/prepared:
	$(PY) -m stimuli prepare --faces orl --size 128 --name $(DEMO_SET) --aperture --out $(RESULTS)
	@mkdir -p $(STEP) && touch $@

$(STEP)/trained: $(STEP)/prepared $(DEMO_GRID)
	$(PY) -m model train $(DEMO_GRID) --out $(RESULTS)
	@touch $@

$(STEP)/explained: $(STEP)/trained
	@for v in $$($(DEMO_TARGETS)); do \
	  test -f $(RESULTS)/relevance/$$v/$(DEMO_SET).npz && continue; \
	  echo "$(PY) -m model explain --variant $$v --stimuli $(DEMO_SET) --out $(RESULTS)"; \
	  $(PY) -m model explain --variant $$v --stimuli $(DEMO_SET) --out $(RESULTS) || exit 1; done
	@touch $@

$(STEP)/baselines: $(STEP)/trained
	@for v in $$($(DEMO_TARGETS)); do kinds=; for k in $(DEMO_BASELINES); do \
	  test -f $(RESULTS)/relevance/$$v/$(DEMO_SET).baseline-$$k.npz || kinds="$$kinds $$k"; done; \
	  test -n "$$kinds" || continue; \
	  cmd="$(PY) -m model explain --variant $$v --stimuli $(DEMO_SET) --baseline$$kinds --images $(DEMO_BASELINE_IMAGES) --out $(RESULTS)"; \
	  echo "$$cmd"; $$cmd || exit 1; done
	@touch $@

$(STEP)/evaluated: $(STEP)/explained $(DEMO_EVAL)
	$(PY) -m model evaluate $(DEMO_EVAL) --out $(RESULTS)
	@touch $@

$(STEP)/sheets: $(STEP)/explained
	$(PY) -m stimuli render --stimuli $(DEMO_SET) --mode random --n-bubbles 25 --sigma 6 --count 16 \
	  --within aperture --out $(RESULTS)/sheets/demo/random --results $(RESULTS) --force
	$(PY) -m stimuli render --stimuli $(DEMO_SET) --mode guided --variant vgg16-imagenet-gender-s0 \
	  --relevance mean --n-bubbles 25 --sigma 6 --count 16 --within aperture \
	  --out $(RESULTS)/sheets/demo/guided --results $(RESULTS) --force
	@touch $@

# one simulated session: a finished one is kept, an interrupted one resumed
# (in a recipe: @$(SESSION); session CONFIG TASK PARTICIPANT SEED OBSERVER)
SESSION = session() { \
	  f=$(SIM)/sub-$${3}/ses-1/beh/sub-$${3}_ses-1_task-$${2}_beh.json; \
	  grep -q '"status": "complete"' $$f 2>/dev/null && return 0; \
	  r=; test -f $$f && r=--resume; \
	  echo "$(PY) -m experiments run $$1 --participant $$3 --session 1 --observer $$5 --seed $$4 $$r"; \
	  $(PY) -m experiments run $$1 --participant $$3 --session 1 --observer $$5 --seed $$4 \
	    --results $(RESULTS) --data-root $(SIM) --no-progress $$r; }

# simulated template observers (diagnostic region: the eyes) and two CNN observers run the
# gender Bubbles experiment
$(STEP)/observed: $(STEP)/explained $(DEMO_BUBBLES)
	@$(SESSION); for p in $(DEMO_TEMPLATES); do \
	  session $(DEMO_BUBBLES) gender demo$$p $$p template:eyes || exit 1; done
	@$(SESSION); i=0; for v in $(DEMO_MODEL_OBSERVERS); do i=$$((i+1)); \
	  session $(DEMO_BUBBLES) gender cnn$$i $$((100+i)) model:$$v || exit 1; done
	@touch $@

# the similarity task: simulated observers and the variants' representational dissimilarities
$(STEP)/similarity: $(STEP)/trained $(DEMO_SIMILARITY)
	@$(SESSION); for p in $(DEMO_SIMILARITY_OBSERVERS); do \
	  session $(DEMO_SIMILARITY) similarity demo$$p $$p simulated || exit 1; done
	$(PY) -m model rdm --variant $$($(DEMO_TARGETS)) \
	  --stimuli $(DEMO_SET) --out $(RESULTS)
	@touch $@

$(RESULTS)/demo/report.html: $(STEP)/evaluated $(STEP)/baselines $(STEP)/sheets $(STEP)/observed $(STEP)/similarity \
  $(DEMO_REPORT)
	$(PY) -m analysis run $(DEMO_REPORT) --out $(RESULTS)/demo --force
