"""Where and how the stages run, for one stream or many.

``plan`` decides once what a run is (in-process or on Ray, a stream URL, parts of a long file); ``build`` turns a
``RunConfig`` into its runner: a ``StreamRunner`` whose ``Sequencer`` takes each stream through the stages in order
(``sequencer``), over services that detect and run DIC in this process (``local``) or on Ray actor pools
(``ray_runtime``). ``reader`` and ``writer`` decode and encode on threads of their own; ``signals`` says how a run
ends on Ctrl-C or SIGTERM.
"""
