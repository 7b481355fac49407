"""Use cases: each public function is one thing a handler asks for."""
