//! The pages in a real headless Chromium (placeholder).
