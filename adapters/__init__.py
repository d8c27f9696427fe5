"""Adapters that turn external topic models into :class:`topiceval.protocol.TopicOutputs`
(installed as ``topiceval.adapters``).

One module per model; each imports its model library lazily and names the extra to install when it
is missing.
"""

__all__: list[str] = []
