"""dicface video side: sources, detection, tracking, alignment, enhancement, blending, runtimes, CLI."""
