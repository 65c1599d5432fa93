FROM python:3.11-slim
WORKDIR /app
# gcc: the engine's modules are compiled with Cython at install (scripts/build_compiled.py); without a
# compiler the engine runs as pure Python, with the same results and one warning line
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md constraints.txt ./
COPY engine engine
COPY flows flows
COPY api api
COPY callpulse callpulse
COPY scripts/build_compiled.py scripts/build_compiled.py
# editable: the compiled modules lie beside the engine's sources, where engine/compiled.py looks for them
# --strict: an image whose engine failed to compile is not built (rather than shipped slower); the C files go
RUN pip install --no-cache-dir -c constraints.txt -e . && python scripts/build_compiled.py --strict && rm -rf build
ENV CALLPULSE_REDIS_URL=redis://redis:6379/0
ENTRYPOINT ["callpulse"]
