"""The web app: `gunicorn app:app` in production (settings in gunicorn.conf.py; `deepfake-detector serve` runs
it), `python app.py` for Flask's development server on http://127.0.0.1:8080 (PORT and HOST override). See
deepfake_detector.serving.settings for the environment variables that pick the model."""
import os

from deepfake_detector.serving.app_factory import create_app
from deepfake_detector.serving.request_logging import configure_json_logging

configure_json_logging()
app = create_app()

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8080")), threaded=True)
