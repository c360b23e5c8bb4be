FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files (the admin's) into STATIC_ROOT (/app/var/static) at build time: web runs with
# DEBUG off, where Django serves none. Needs no database or Redis.
RUN DJANGO_DEBUG=0 python manage.py collectstatic --noinput --verbosity 0
RUN useradd --create-home app && mkdir -p /app/var/prometheus && chown -R app /app/var
USER app
