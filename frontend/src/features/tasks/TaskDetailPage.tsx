export default function TaskDetailPage() {
  return null;
}
