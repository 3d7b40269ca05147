// The service worker of docs/frontend.md section 11 (as there), plus a report to the page.
self.addEventListener("push", (event) => {
  const reminder = event.data ? event.data.json() : null;
  if (!reminder) return;
  event.waitUntil(
    (async () => {
      await self.registration.showNotification(reminder.title, {
        body: reminder.due_at ? `Due ${new Date(reminder.due_at).toLocaleString()}` : "Reminder",
        tag: `task-${reminder.task_id}`,
        data: reminder,
      });
      for (const client of await self.clients.matchAll({ includeUncontrolled: true })) {
        client.postMessage({ shown: reminder });
      }
    })(),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(`/tasks/${event.notification.data.task_id}`));
});
