#!/usr/bin/env bash
# Wheels a lent GPU machine lacks (it has no network; its python3 3.12 holds torch, Triton, accelerate), into
# .whl/ at the repository root (git-ignored through .git/info/exclude), for tests/bench/gpu_session.sh there.
# Versions: this project's pins (requirements*.txt) and, for their needs, those of the local venv.
# bitsandbytes is repacked with its CUDA 13.0 library only (43 MB -> about 4 MB).
#   bash tests/bench/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> "$(git rev-parse --git-common-dir)/info/exclude"
rm -rf .whl && mkdir -p .whl
pins=(transformers==5.23.0 peft==0.21.2 trl==1.16.0 datasets==5.2.0 bitsandbytes==0.50.2 liger-kernel==0.8.5
      pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.8.0 typing-inspection==0.4.5
      huggingface-hub==2.4.0 tokenizers==0.23.3 fsspec==2026.9.0 dill==0.4.1 multiprocess==0.70.19
      hjson==3.1.0)
platforms=()
for n in 17 24 27 28 34; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" --platform manylinux2014_x86_64 -d .whl "${pins[@]}"
# deepspeed has no wheel on PyPI: build its pure-Python one (no ops compiled) from the sdist
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w .whl deepspeed==0.19.8
# bitsandbytes: keep one native library, the one for CUDA 13.0
bnb=$(ls .whl/bitsandbytes-*.whl)
tmp=$(mktemp -d)
(cd "$tmp" && unzip -q "$OLDPWD/$bnb" && find . -name 'libbitsandbytes_*' ! -name 'libbitsandbytes_cuda130.so' -delete \
    && rm "$OLDPWD/$bnb" && python3 -c "import shutil, sys; shutil.make_archive(sys.argv[1], 'zip', '.')" "$tmp/bnb" \
    && mv "$tmp/bnb.zip" "$OLDPWD/$bnb")
rm -rf "$tmp"
du -sh .whl && ls .whl
