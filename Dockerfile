FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY engine engine
COPY flows flows
COPY api api
COPY callpulse callpulse
RUN pip install --no-cache-dir -c constraints.txt .
ENV CALLPULSE_REDIS_URL=redis://redis:6379/0
ENTRYPOINT ["callpulse"]
