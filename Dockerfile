FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY agent agent
COPY store store
COPY channels channels
COPY main.py switchboard.toml ./
RUN pip install --no-cache-dir . && useradd --create-home switchboard
USER switchboard
EXPOSE 8000 2525
CMD ["python", "main.py"]
