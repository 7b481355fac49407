export default function TaskListPage() {
  return null;
}
