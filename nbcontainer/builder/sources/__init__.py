"""Where COPY/ADD and RUN --mount sources come from: the build context, images, git, http."""
