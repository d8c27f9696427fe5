"""Topic models implemented by topiceval (installed as ``topiceval.models``).

Each model is an optional extra with heavy dependencies (torch); importing this package imports
none of them. Models implement :class:`topiceval.protocol.TopicModel`.
"""

__all__: list[str] = []
