"""Image building: stages, cache, COPY/ADD and the RUN sandbox."""
