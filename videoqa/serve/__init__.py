"""``videoqa serve``: an OpenAI-compatible HTTP API and a web page over one shared ``Assistant``.

The stage sits above ``assistant`` and below ``cli``. ``settings`` holds what the command line chose;
``security`` guards paths, keys and body sizes; ``engine`` owns the assistant (models loaded once, in the
background, and used by one request at a time); ``videos`` is the catalog of videos with their
background indexing; ``uploads`` keeps uploaded videos; ``chat`` answers a chat request as the terminal
would; ``captions`` makes each video's captions once for every reader; ``openai_api`` holds OpenAI's
request and reply shapes; ``api`` the ``/v1`` routes; ``app`` puts them together; ``run`` serves it.
"""
