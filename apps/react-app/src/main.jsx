// The shop's front end: one page that asks the api whether it is healthy and shows the answer.
import { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";

function Health() {
  const [health, setHealth] = useState({ state: "asking" });

  useEffect(() => {
    fetch("/api/health")
      .then(async (response) => {
        const body = await response.json().catch(() => ({}));
        setHealth({ state: response.ok ? "healthy" : "unhealthy", status: response.status, body });
      })
      .catch((error) => setHealth({ state: "unreachable", error: String(error) }));
  }, []);

  return (
    <main>
      <h1>shop</h1>
      <p id="health" data-state={health.state}>
        api: {health.state}
        {health.status ? ` (HTTP ${health.status})` : ""}
      </p>
      {health.body ? <pre>{JSON.stringify(health.body, null, 2)}</pre> : null}
      {health.error ? <pre>{health.error}</pre> : null}
    </main>
  );
}

createRoot(document.getElementById("root")).render(<Health />);
